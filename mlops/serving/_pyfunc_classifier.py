"""MLflow "model from code" file, copied into every logged classifier: it names the servable class and nothing else,
so that the model loads through whatever `mlops.serving` is installed."""

import mlflow

from mlops.serving.pyfunc import AdapterClassifier

mlflow.models.set_model(AdapterClassifier())
