"""What a RayService manifest names: ``ragline.serve:app_builder``, and the deployments its config tunes by name.

Ray Serve lives in ragline.serving; this module only re-exports.
"""

from ragline.serving.app import app_builder
from ragline.serving.deployments import GeneratorDeployment, IngressDeployment, RetrieverDeployment

__all__ = ["GeneratorDeployment", "IngressDeployment", "RetrieverDeployment", "app_builder"]
