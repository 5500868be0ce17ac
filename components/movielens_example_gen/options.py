"""Options of MovieLensExampleGen: one frozen type with its defaults, validation and its round
trip through the component's `custom_config` (a `google.protobuf.Struct` in TFX's CustomConfig).

Importable without TensorFlow or Beam, so that command-line parsers can offer the choices.
"""

import dataclasses
from typing import Any, Mapping

from google.protobuf import any_pb2, json_format, struct_pb2
from tfx.proto import example_gen_pb2
from tfx.utils import proto_utils

from kiko.data.movielens import AUTO, LAYOUT_CHOICES

MALFORMED_FAIL = "fail"  # the run fails at the first malformed line, naming file:line and reason
MALFORMED_SKIP = "skip"  # malformed lines are skipped, counted and written to REJECTED_DIR
MALFORMED_CHOICES = (MALFORMED_FAIL, MALFORMED_SKIP)

# How the output is hash-split (an output_config choice, see component.make_output_config).
PARTITION_BY_RATING = "rating"  # each rating hashed on its own
PARTITION_BY_USER = "user"  # all of a user's ratings land in one split
PARTITION_CHOICES = (PARTITION_BY_RATING, PARTITION_BY_USER)

# With malformed_lines "skip", a run fails when more than this share of a file's lines is
# rejected: such a file is most likely in another format, not a file with a few bad lines.
DEFAULT_MAX_REJECTED_FRACTION = 0.01


@dataclasses.dataclass(frozen=True)
class Options:
    """What the executor does with malformed lines and which layout it reads.

    `malformed_lines`: one of MALFORMED_CHOICES. `max_rejected_fraction`: in [0, 1].
    `layout`: one of kiko.data.movielens.LAYOUT_CHOICES ("auto" detects it). `code_version`
    is never read by the executor: it is there so that the cache key changes when the parsing
    code does (TFX caches an execution by its configuration, not by its code).
    """

    malformed_lines: str = MALFORMED_FAIL
    max_rejected_fraction: float = DEFAULT_MAX_REJECTED_FRACTION
    layout: str = AUTO
    code_version: str = ""

    def __post_init__(self):
        if self.malformed_lines not in MALFORMED_CHOICES:
            raise ValueError(f"malformed_lines must be one of {MALFORMED_CHOICES}, "
                             f"got {self.malformed_lines!r}")
        if not 0 <= self.max_rejected_fraction <= 1:
            raise ValueError(f"max_rejected_fraction must be in [0, 1], "
                             f"got {self.max_rejected_fraction}")
        if self.layout not in LAYOUT_CHOICES:
            raise ValueError(f"layout must be one of {LAYOUT_CHOICES}, got {self.layout!r}")

    @property
    def skip_malformed(self) -> bool:
        return self.malformed_lines == MALFORMED_SKIP

    def to_custom_config(self) -> example_gen_pb2.CustomConfig:
        """The options as TFX's CustomConfig (a Struct in an Any), keyed by field name."""
        values = struct_pb2.Struct()
        values.update(dataclasses.asdict(self))
        packed = any_pb2.Any()
        packed.Pack(values)
        return example_gen_pb2.CustomConfig(custom_config=packed)

    @classmethod
    def from_exec_properties(cls, exec_properties: Mapping[str, Any]) -> "Options":
        """The options an execution was configured with (the defaults where none were set)."""
        # Imported here: tfx.types loads TensorFlow, which command-line parsers do not need.
        from tfx.types import standard_component_specs

        text = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
        if not text:
            return cls()
        config = example_gen_pb2.CustomConfig()
        proto_utils.json_to_proto(text, config)
        values = struct_pb2.Struct()
        config.custom_config.Unpack(values)
        fields = json_format.MessageToDict(values)
        return cls(**{field.name: fields[field.name] for field in dataclasses.fields(cls)
                      if field.name in fields})
