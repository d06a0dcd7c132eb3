"""Atomiton flow documents in every shape the desktop app has written, made by these tests.

The shapes follow the app's public history (see conductor_nb/model/atomiton/shapes.py);
the documents themselves are ours: a greeting written to a file, a CSV totalled, a
folder of images resized and watermarked.
"""

from __future__ import annotations

PORTS = """
    inputPorts:
      - {id: input, name: Input, type: input, dataType: any, required: false}
    outputPorts:
      - {id: output, name: Output, type: output, dataType: any}"""


def greeting_current(out: str = "out/greeting.txt") -> str:
    """The current shape: a record made by edit-fields, formatted by a JS transform, written."""
    return f"""\
id: "6f1c2f0e-1b7a-4a55-9a3e-000000000001"
name: "Greeting"
description: "Make a record, format it, write it"
type: "group"
version: "1.0.0"
metadata: {{author: "tests", tags: [example]}}
nodes:
  - id: "make-record"
    type: "edit-fields"
    name: "Make Record"
    version: "1.0.0"
    metadata: {{id: edit-fields, category: data}}{PORTS}
    parameters:
      values:
        who: "notebooks"
        stamp: "{{{{$now}}}}"
      keepOnlySet: true
    position: {{x: 10, y: 20}}
  - id: "format"
    type: "transform"
    name: "Format"
    version: "1.0.0"{PORTS}
    parameters:
      operation: "map"
      transformFunction: |
        item => {{
          return `Hello ${{item.who}}
        at ${{item.stamp}}`;
        }}
    position: {{x: 200, y: 20}}
  - id: "write"
    type: "file-system"
    name: "Write"
    version: "1.0.0"{PORTS}
    parameters:
      operation: "write"
      path: "{out}"
      content: "{{{{$input}}}}"
      encoding: "utf8"
      createDirectories: true
      overwrite: true
    position: {{x: 400, y: 20}}
edges:
  - {{id: e1, source: make-record, target: format, sourceHandle: output, targetHandle: input}}
  - {{id: e2, source: format, target: write, sourceHandle: output, targetHandle: input}}
"""


def totals_current(csv: str = "/data/sales.csv", out: str = "/output/totals.json") -> str:
    """The current shape: CSV -> JS filter (whole input) -> JS totals -> JSON file."""
    return f"""\
id: "6f1c2f0e-1b7a-4a55-9a3e-000000000002"
name: "Totals"
description: "Total the active rows of a CSV"
category: "data"
type: "group"
version: "1.0.0"
metadata: {{author: "tests"}}
nodes:
  - id: "rows"
    type: "spreadsheet"
    name: "Rows"
    version: "1.0.0"{PORTS}
    parameters:
      filePath: "{csv}"
      hasHeaders: true
      delimiter: ","
      encoding: "utf-8"
    position: {{x: 0, y: 0}}
  - id: "active"
    type: "transform"
    name: "Active"
    version: "1.0.0"{PORTS}
    parameters:
      expression: "// keep the active rows\\nreturn data.filter(r => r.active === 'yes');"
      inputType: "array"
      outputType: "array"
    position: {{x: 200, y: 0}}
  - id: "sum"
    type: "transform"
    name: "Sum"
    version: "1.0.0"{PORTS}
    parameters:
      code: |
        const total = data.reduce((s, r) => s + parseFloat(r.amount || 0), 0);
        return {{total: total, count: data.length, average: total / data.length}};
      inputParams: "data"
      returnType: "object"
      async: false
    position: {{x: 400, y: 0}}
  - id: "save"
    type: "file-system"
    name: "Save"
    version: "1.0.0"{PORTS}
    parameters:
      operation: "write"
      filePath: "{out}"
      encoding: "utf-8"
      createDirectory: true
      overwrite: true
    position: {{x: 600, y: 0}}
edges:
  - {{id: a, source: rows, target: active, sourceHandle: output, targetHandle: input}}
  - {{id: b, source: active, target: sum, sourceHandle: output, targetHandle: input}}
  - {{id: c, source: sum, target: save, sourceHandle: output, targetHandle: input}}
variables:
  inputPath: {{type: "string", defaultValue: "{csv}", description: "the CSV"}}
settings:
  runtime: {{timeout: 20000}}
  ui: {{color: "#123456"}}
"""


def images_current() -> str:
    """The current shape: list images -> loop -> parallel -> resize -> watermark -> save."""
    return f"""\
id: "6f1c2f0e-1b7a-4a55-9a3e-000000000003"
name: "Thumbnails"
description: "Resize and watermark a folder of images"
category: "media"
type: "group"
version: "1.0.0"
nodes:
  - id: "find"
    type: "file-system"
    name: "Find Images"
    version: "1.0.0"
    inputPorts: [{{id: trigger, name: Trigger, type: trigger, dataType: any}}]
    outputPorts:
      - {{id: output, name: Output, type: output, dataType: any}}
      - {{id: error, name: Error, type: error, dataType: object}}
    parameters:
      operation: "list"
      filePath: "/pictures/in"
      pattern: "*.{{jpg,png}}"
      recursive: false
      includeStats: true
    position: {{x: 0, y: 0}}
  - id: "each"
    type: "loop"
    name: "Each Image"
    version: "1.0.0"
    outputPorts:
      - {{id: item, name: Item, type: output, dataType: any}}
      - {{id: index, name: Index, type: output, dataType: number}}
      - {{id: complete, name: Complete, type: output, dataType: array}}
    parameters:
      iterateOver: "files"
      maxIterations: 100
      breakOnError: false
    position: {{x: 100, y: 0}}
  - id: "fan-out"
    type: "parallel"
    name: "Fan Out"
    version: "1.0.0"{PORTS}
    parameters:
      concurrency: 2
      preserveOrder: true
      timeout: 30000
    position: {{x: 200, y: 0}}
  - id: "shrink"
    type: "image"
    name: "Shrink"
    version: "1.0.0"{PORTS}
    parameters:
      operation: "resize"
      width: 320
      height: 240
      maintainAspectRatio: true
      quality: 80
      format: "png"
    position: {{x: 300, y: 0}}
  - id: "stamp"
    type: "image"
    name: "Stamp"
    version: "1.0.0"{PORTS}
    parameters:
      operation: "watermark"
      watermarkPath: "/pictures/mark.png"
      position: "bottom-right"
      opacity: 0.5
      scale: 0.25
      margin: 8
    position: {{x: 400, y: 0}}
  - id: "keep"
    type: "file-system"
    name: "Keep"
    version: "1.0.0"{PORTS}
    parameters:
      operation: "write"
      filePath: "/pictures/out"
      createDirectory: true
      overwrite: true
    position: {{x: 500, y: 0}}
edges:
  - {{id: e1, source: find, target: each, sourceHandle: output, targetHandle: input}}
  - {{id: e2, source: each, target: fan-out, sourceHandle: item, targetHandle: input}}
  - {{id: e3, source: fan-out, target: shrink, sourceHandle: output, targetHandle: input}}
  - {{id: e4, source: shrink, target: stamp, sourceHandle: output, targetHandle: input}}
  - {{id: e5, source: stamp, target: keep, sourceHandle: output, targetHandle: input}}
settings:
  runtime: {{timeout: 60000, parallel: true}}
"""


def totals_data_shape(endpoint: str) -> str:
    """Nodes ``{id, type, position, data}``, camelCase types, edges in one of three forms."""

    def end(node: str, port: str) -> str:
        if endpoint == "object":
            return f"{{nodeId: {node}, portId: {port}}}"
        if endpoint == "node-port":
            return f"{{node: {node}, port: {port}}}"
        return node

    return f"""\
name: "Totals (data shape)"
type: "composite"
version: "1.0.0"
nodes:
  - id: "rows"
    type: "csvReader"
    position: {{x: 0, y: 0}}
    data: {{filePath: "data/sales.csv", hasHeaders: true}}
  - id: "active"
    type: "transform"
    position: {{x: 200, y: 0}}
    data: {{expression: "data.filter(r => r.active === 'yes')"}}
  - id: "sum"
    type: "code"
    position: {{x: 400, y: 0}}
    data:
      code: "const total = data.reduce((s, r) => s + Number(r.amount), 0); return {{total}};"
  - id: "save"
    type: "fileSystem"
    position: {{x: 600, y: 0}}
    data: {{operation: "write", filePath: "out/totals.json", customLabel: "Save"}}
edges:
  - {{id: a, source: {end("rows", "data")}, target: {end("active", "input")}}}
  - {{id: b, source: {end("active", "output")}, target: {end("sum", "data")}}}
  - {{id: c, source: {end("sum", "result")}, target: {end("save", "data")}}}
"""


def totals_schema_shape() -> str:
    """``parameters`` holds the UI's field schemas and ``data`` the values."""
    return """\
id: "totals-schema"
name: "Totals (schema shape)"
type: "composite"
version: "1.0.0"
nodes:
  - id: "rows"
    type: "csv-reader"
    name: "Rows"
    category: "io"
    version: "1.0.0"
    metadata: {id: csv-reader, variant: csv-reader}
    inputPorts: [{id: trigger, name: Trigger, type: trigger, dataType: any}]
    outputPorts: [{id: data, name: Data, type: output, dataType: array}]
    parameters:
      filePath: {type: "string", required: true, control: "file-picker"}
      hasHeaders: {type: "boolean", default: true, control: "checkbox"}
      delimiter: {type: "string", default: ",", control: "select", options: [",", ";"]}
    data:
      filePath: "data/sales.csv"
      customLabel: "Rows"
      lastModified: "2025-01-15T10:00:00Z"
    position: {x: 0, y: 0}
    settings: {ui: {position: {x: 0, y: 0}}}
  - id: "sum"
    type: "code"
    name: "Sum"
    parameters:
      code: {type: "string", default: "return data;", control: "code", language: "javascript"}
    data:
      code: "return {total: data.reduce((s, r) => s + Number(r.amount), 0)};"
    position: {x: 200, y: 0}
edges:
  - {id: a, source: rows, target: sum, sourceHandle: data, targetHandle: input}
"""


def greeting_wrapped(key: str, with_data: bool = False) -> str:
    """Wrapped in ``flow:``/``blueprint:``, nodes keyed by id, {nodeId, portId} edges."""
    inner = "  data:\n" if with_data else ""
    pad = "    " if with_data else "  "
    nodes = f"""\
{pad}nodes:
{pad}  make_record:
{pad}    type: "edit-fields"
{pad}    parameters:
{pad}      values: {{who: "world", shout: "HELLO"}}
{pad}    position: {{x: 0, y: 0}}
{pad}  format_it:
{pad}    type: "transform"
{pad}    parameters:
{pad}      operation: "map"
{pad}      transformFunction: "item => `${{item.shout}} ${{item.who}}`"
{pad}    position: {{x: 200, y: 0}}
{pad}  write_it:
{pad}    type: "file-system"
{pad}    parameters: {{operation: "write", path: "out/wrapped.txt", createDirectories: true}}
{pad}    position: {{x: 400, y: 0}}
{pad}edges:
{pad}  - id: "one"
{pad}    source: {{nodeId: "make_record", portId: "data"}}
{pad}    target: {{nodeId: "format_it", portId: "data"}}
{pad}  - id: "two"
{pad}    source: {{nodeId: "format_it", portId: "result"}}
{pad}    target: {{nodeId: "write_it", portId: "content"}}
"""
    return f"""\
{key}:
  metadata:
    name: "Wrapped greeting"
    version: "1.0.0"
{inner}{nodes}  settings:
    execution: {{mode: "sequential", errorHandling: "stop"}}
"""


MALFORMED_NODES_UNDER_METADATA = """\
flow:
  metadata:
    name: "Broken"
    version: "1.0.0"

    nodes:
    make_record:
      type: "edit-fields"
      parameters: {values: {a: 1}}
  edges: []
"""
