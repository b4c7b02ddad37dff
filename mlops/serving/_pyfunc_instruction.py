"""MLflow "model from code" file, copied into every logged instruction model: it names the servable class and nothing
else, so that the model loads through whatever `mlops.serving` is installed."""

import mlflow

from mlops.serving.pyfunc import AdapterInstructor

mlflow.models.set_model(AdapterInstructor())
