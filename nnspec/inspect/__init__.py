"""``nnspec inspect``: pictures of what a trained image classifier learned.

The learned filters of a conv layer (read from the run's backend-neutral weights file with numpy
only), the feature maps of a chosen layer for a few test images, the misclassified test examples
with their true and predicted classes, and Grad-CAM heat maps. Frameworks and matplotlib are
imported only when a picture needs them, so importing this package stays light.
"""

from __future__ import annotations

from nnspec.inspect.api import InspectResult, Picture, format_report, inspect_run
from nnspec.inspect.errors import InspectError

__all__ = ["InspectError", "InspectResult", "Picture", "format_report", "inspect_run"]
