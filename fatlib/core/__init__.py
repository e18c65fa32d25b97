"""What both papers use: scale profiles (:mod:`~fatlib.core.profiles`), datasets
(:mod:`~fatlib.core.data`), networks (:mod:`~fatlib.core.models`: CNV, DoReFa-AlexNet, VGG-16,
MobileNetV1), the artifact store (:mod:`~fatlib.core.store`), the training loop
(:mod:`~fatlib.core.training`), the papers' own numbers and claims tables
(:mod:`~fatlib.core.paper`) and small torch helpers (:mod:`~fatlib.core.torch_utils`)."""
