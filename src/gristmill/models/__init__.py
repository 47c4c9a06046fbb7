"""The model registry: ``definition`` holds what a pipeline declares (``Model``,
``ArtifactConfig``, stage names; plain data, importable by the definition layer), ``registry``
the objects the Client returns for recorded models and their versions. This package imports
neither of them: the definition layer must not pull in the registry."""
