"""Where a pruned network runs and how fast: inference runtimes (:mod:`amc.deploy.runtimes`:
torch fp32, torch bf16 + channels_last, onnxruntime), measured latency
(:mod:`amc.deploy.measure`) and the per-layer latency table that makes measured latency a
budget (:mod:`amc.deploy.table`)."""
