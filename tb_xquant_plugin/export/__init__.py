"""What the CLI hands to other tools: CI gates (``gates``), the Markdown report (``markdown``) and the Model
Explorer graph with node-data overlays (``model_explorer``).  Built on the analysis and ``api.views``; files are
written through ``readers.files`` (the only module that writes)."""
