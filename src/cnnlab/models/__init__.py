"""Model registry, course CNNs, the zoo and the model contract."""
