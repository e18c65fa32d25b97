"""FAT (Zahid et al., Xilinx 2020): the error-injection layer (:mod:`~fatlib.fat.injection`, §IV),
the exhaustive stuck-at campaign (:mod:`~fatlib.fat.campaign`, Algorithm 1), selective channel
triplication (:mod:`~fatlib.fat.replication`, §V-C), every figure and table with its claims
(:mod:`~fatlib.fat.experiments`) and their plots (:mod:`~fatlib.fat.plots`)."""
