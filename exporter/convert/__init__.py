"""Converters, one module per kind of thing converted: sklearn steps through skl2onnx
(``sklearn.py``, with ``extend.py`` and ``target.py`` adding converters skl2onnx lacks), torch
modules through torch.onnx (``torch.py``), heads (``heads.py``, ``skorch_heads.py``) and torch leaves
nested in sklearn containers (``nested.py``). ``exporter.nodes`` decides which applies to a node."""
