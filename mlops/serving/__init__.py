"""Serving: trained adapters logged as MLflow pyfunc models ("models from code") and the pyfunc classes they load.

Logged models import `mlops.serving.pyfunc` and nothing else of mlops, so later moves of the library cannot break them.
"""

from mlops.serving._log import log_adapter_model
from mlops.serving.servable import adapter_bytes, load_servable, served_size

__all__ = ["adapter_bytes", "load_servable", "log_adapter_model", "served_size"]
