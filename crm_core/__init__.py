"""crm_core: every rule of the CRM, free of any UI package.

Faces (the NiceGUI panel in ``app/``, the notebooks in ``crm_notebooks/`` and the ``crm``
command line) call the services of this package; none of them holds a rule of its own.
"""

__version__ = "0.1.0"
