"""An in-memory fake of the clientset for tests: client-go's ``fake.NewSimpleClientset``.

``FakeClientset(*gpus)`` offers ``device_v1alpha1().gpus()`` with get, list and watch over an
:class:`ObjectTracker` with real revisions and watch replay, recorded :meth:`actions
<FakeClientset.actions>` and prepended reactors. See :mod:`nvinformers.clientset.fake._clientset`.
"""

from nvinformers.clientset.fake._clientset import (
    DEFAULT_HISTORY_LIMIT,
    Action,
    FakeClientset,
    FakeDeviceV1alpha1Client,
    FakeGPUClient,
    FakeGPUWatch,
    ObjectTracker,
    Reaction,
)

__all__ = [
    "FakeClientset",
    "FakeDeviceV1alpha1Client",
    "FakeGPUClient",
    "FakeGPUWatch",
    "ObjectTracker",
    "Action",
    "Reaction",
    "DEFAULT_HISTORY_LIMIT",
]
