"""The NiceGUI web panel: thin pages over the ``crm_core`` services (see ``app.main``)."""
