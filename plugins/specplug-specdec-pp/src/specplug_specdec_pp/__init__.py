"""SpecDec++ (arXiv 2405.19715) for specplug: the ``specdec_pp`` method and its training objective."""
