"""sharenas supernet package: spaces, dynamic ops, sharing strategies, samplers, training."""
