"""Cancer Imaging Workbench: catalog, sandbox spawner, hub services, DICOM, widgets, federation."""

__version__ = "0.1.0"
