"""API types of the Device API, by group and version (``nvinformers.api.device.v1alpha1``)."""
