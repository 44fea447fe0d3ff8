"""tb-xquant: a TensorBoard tab for MCT XQuant reports (degraded layers, judged causes, countermeasures)."""
__version__ = "0.1.0"
