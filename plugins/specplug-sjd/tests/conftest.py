from specplug.testing import limit_torch_threads

limit_torch_threads(1)
