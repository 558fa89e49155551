"""``playscope capacity``: size a deployment for a load, from the figures of a bench report.

Pure arithmetic over measured figures (``figures``), a price table (``prices``) and the stored
size of each record (``encoding``); it reads a bench JSON file and never imports a component.
"""
