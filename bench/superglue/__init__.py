"""SuperGLUE / FewGLUE classification: data loaders, metrics and the runner."""
