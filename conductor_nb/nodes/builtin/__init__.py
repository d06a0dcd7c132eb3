"""The built-in node library: one module per family, each exposing ``NODE_TYPES``.

``conductor_nb.nodes.plugins`` registers them on the registry's first lookup.
Families: ``data`` (edit-fields, transform), ``code`` (JavaScript, from the ``js``
extra), ``files`` (file-system), ``http``
(http-request), ``shell`` (shell-command), ``spreadsheet``, ``control`` (if,
delay, loop, parallel, group), ``notebook`` and ``image``. Optional
dependencies (papermill, openpyxl, Pillow) are imported only when a node runs.
"""
