"""FT-DeepNets (Baek et al., WACV 2022): transient zero errors (:mod:`~fatlib.ftd.errors`, §2),
channel ranking (:mod:`~fatlib.ftd.ranking`, §3.1), kernel / feature-map recovery and D2NN
(:mod:`~fatlib.ftd.duplication`, §3.2–3.3, §4.4), latency and memory overhead
(:mod:`~fatlib.ftd.overhead`, §4.3), accuracy under errors (:mod:`~fatlib.ftd.evaluation`, §4),
every figure and table with its claims (:mod:`~fatlib.ftd.experiments`) and their plots
(:mod:`~fatlib.ftd.plots`)."""
