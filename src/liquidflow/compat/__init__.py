"""Bridges to other packages: ncps modules (``compat.ncps``), Keras <-> torch weights (``compat.keras_torch``)."""
