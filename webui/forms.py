"""Forms: the new-job form, generated from the JobSpec model, and the CSV upload.

The job form never declares a spec field itself. `spec_form()` walks the JSON
schema of `JobSpec` (`jobspec.schema`: enums become selects, numbers
number inputs, booleans checkboxes, lists comma-separated text) so a field added
to the spec appears here, in its group, with its default. Validation is pydantic's: `job_submit`
returns field-named errors that `spec_form(errors=...)` shows at the field.

The partial `jobs/_spec_form.html` renders a `SpecForm`; it takes a spec or dict
to pre-fill, a set of highlighted field names and a dict of warnings per field,
so the prompt box can show the parsed spec through the same form.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.conf import settings

from jobspec import BUILTIN_MODELS, JobSpec, flatten
from jobspec.fields import form_groups, searched_fields
from jobspec.schema import SpecLeaf, spec_leaves

# Which group each top-level spec field belongs to, in display order. A field the
# spec gains later and that is not listed here appears under "Other settings".
FIELD_GROUPS = form_groups()
OPEN_GROUPS = ("Job", "Data", "Model", "Algorithm", "Clients", "Training")

NON_FIELD = "spec"
# `hpo.fixed` is shown as one checkbox ("pin") per field a search may change.
PINS_FIELD = "hpo.fixed"
PINS_HELP = (
    "Checked fields keep the value set here in every trial. Fields you set are checked for you "
    "(from a prompt: the fields it mentioned); uncheck one to let the search change it."
)


@dataclass
class SpecField:
    """One input of the form, described from the JSON schema."""

    name: str  # dotted spec name: "partition.alpha"
    kind: str  # select | integer | number | checkbox | text | list | pins
    default: Any
    help: str = ""
    choices: list[str] = field(default_factory=list)
    choice_values: dict[str, Any] = field(default_factory=dict)
    blank_label: str = ""  # a select's empty option ("default", "off"); none when the field needs a value
    minimum: float | None = None  # inclusive bounds, checked by the browser too
    maximum: float | None = None
    bounds: str = ""  # every bound in words: "> 0, ≤ 1"
    item_kind: str = ""  # for lists: integer | number | text
    required_in_parent: bool = False
    optional_parent: str = ""  # "attack" when this field lives in an object that may be null
    suggestions: list[str] = field(default_factory=list)
    # Filled per rendering:
    value: str = ""
    checked: bool = False
    selected: list[str] = field(default_factory=list)  # pins: the checked choices
    highlighted: bool = False
    warning: str = ""
    error: str = ""

    @property
    def label(self) -> str:
        return self.name.rsplit(".", 1)[-1].replace("_", " ").capitalize()

    @property
    def html_id(self) -> str:
        return "f-" + self.name.replace(".", "-").replace("_", "-")

    @property
    def step(self) -> str:
        return "1" if self.kind == "integer" else "any"

    @property
    def placeholder(self) -> str:
        if self.optional_parent and self.default is not None:
            return f"{self.default}"
        if self.kind == "list":
            return "comma-separated, e.g. " + ("256, 128" if self.item_kind != "text" else "rounds, seed")
        return "default" if self.default is None else ""


@dataclass
class SpecGroup:
    title: str
    fields: list[SpecField]

    @property
    def slug(self) -> str:
        return "g-" + "".join(c if c.isalnum() else "-" for c in self.title.lower())

    @property
    def open(self) -> bool:
        return self.title in OPEN_GROUPS or any(
            f.highlighted or f.warning or f.error or _differs_from_default(f) for f in self.fields
        )


@dataclass
class SpecForm:
    groups: list[SpecGroup]
    non_field_errors: list[str]
    prompt: str = ""

    @property
    def fields(self) -> list[SpecField]:
        return [f for group in self.groups for f in group.fields]


def _differs_from_default(spec_field: SpecField) -> bool:
    if spec_field.optional_parent:
        return bool(spec_field.value)  # anything set turns the optional block (attack, ...) on
    if spec_field.kind == "checkbox":
        return spec_field.checked != bool(spec_field.default)
    if spec_field.kind == "pins":
        return bool(spec_field.selected)
    return spec_field.value != _display(spec_field.default)


# --- from spec leaves to inputs ----------------------------------------------------------------

INPUT_KIND = {
    "integer": "integer",
    "number": "number",
    "boolean": "checkbox",
    "array": "list",
    "enum": "select",
}


def _field(leaf: SpecLeaf) -> SpecField:
    kind = INPUT_KIND.get(leaf.type, "text")
    blank_label = ""
    if kind == "select" and leaf.nullable:
        blank_label = "default"
    elif kind == "select" and leaf.optional_parent and leaf.required_in_parent:
        blank_label = "off"
    if leaf.name == PINS_FIELD:
        return SpecField(
            name=leaf.name, kind="pins", default=leaf.default, help=PINS_HELP, choices=list(searched_fields())
        )
    return SpecField(
        name=leaf.name,
        kind=kind,
        default=leaf.default,
        help=leaf.description,
        choices=[str(value) for value in leaf.choices],
        choice_values={str(value): value for value in leaf.choices},
        blank_label=blank_label,
        minimum=leaf.minimum,
        maximum=leaf.maximum,
        bounds=leaf.bounds,
        item_kind=INPUT_KIND.get(leaf.item_type, "text"),
        required_in_parent=leaf.required_in_parent,
        optional_parent=leaf.optional_parent,
    )


def _schema_fields() -> list[tuple[str, list[SpecField]]]:
    """(top-level name, its input fields) for every JobSpec property, in schema order."""
    grouped: dict[str, list[SpecField]] = {}
    for leaf in spec_leaves():
        grouped.setdefault(leaf.top, []).append(_field(leaf))
    return list(grouped.items())


# --- building and parsing ----------------------------------------------------------------------


def _display(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _matches(name: str, names: Iterable[str]) -> bool:
    """Whether `name` or one of its parents ("attack" for "attack.kind") is listed."""
    parts = name.split(".")
    wanted = set(names)
    return any(".".join(parts[: i + 1]) in wanted for i in range(len(parts)))


def _related(name: str, names: Iterable[str]) -> bool:
    """Whether `name` is listed, or is a parent or a child of a listed name."""
    return any(
        other == name or other.startswith(name + ".") or name.startswith(other + ".") for other in names
    )


def _pins(submitted: Mapping[str, Any], name: str) -> list[str]:
    """The checked pins of a posted form (a QueryDict holds one value per checkbox)."""
    getlist = getattr(submitted, "getlist", None)
    raw = getlist(name) if getlist is not None else submitted.get(name, [])
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    return [item.strip() for item in items if item.strip()]


def _field_for_error(error_field: str, names: list[str]) -> str | None:
    """The form field an error belongs to: the longest field name the error path starts with."""
    candidates = [n for n in names if error_field == n or error_field.startswith(n + ".")]
    return max(candidates, key=len) if candidates else None


def spec_form(
    initial: JobSpec | Mapping[str, Any] | None = None,
    *,
    submitted: Mapping[str, Any] | None = None,
    errors: list[dict[str, str]] | None = None,
    highlighted: Iterable[str] = (),
    warnings: Mapping[str, str] | None = None,
    suggestions: Mapping[str, list[str]] | None = None,
    prompt: str = "",
    explicit: Iterable[str] = (),
) -> SpecForm:
    """The job form, pre-filled from `initial` (a JobSpec or spec dict; the defaults when None)
    or re-filled from a rejected POST (`submitted`), with errors, highlights and warnings.

    `explicit` names the fields the user set (a prompt's `mentioned`): their pins in
    `hpo.fixed` start checked, besides those `initial` already lists."""
    if isinstance(initial, JobSpec):
        initial = initial.model_dump(mode="json")
    values = flatten(dict(initial)) if initial is not None else None
    highlighted = list(highlighted)
    explicit = list(explicit)
    warnings = dict(warnings or {})
    all_suggestions = {"model": [*BUILTIN_MODELS, "hf:"], **(suggestions or {})}
    groups: dict[str, list[SpecField]] = {title: [] for title in FIELD_GROUPS}
    group_of = {name: title for title, names in FIELD_GROUPS.items() for name in names}
    for top_name, leaves in _schema_fields():
        present_parent = values is not None and values.get(top_name, "absent") is not None
        for leaf in leaves:
            leaf.suggestions = all_suggestions.get(leaf.name, [])
            if submitted is not None:
                leaf.value = str(submitted.get(leaf.name, "")).strip()
                leaf.checked = leaf.name in submitted and leaf.kind == "checkbox"
            else:
                if values is None:
                    value = None if leaf.optional_parent else leaf.default
                elif leaf.optional_parent and not present_parent:
                    value = None
                else:
                    value = values.get(leaf.name, leaf.default)
                leaf.value = _display(value)
                leaf.checked = bool(value) if leaf.kind == "checkbox" else False
            if leaf.kind == "pins":
                if submitted is not None:
                    leaf.selected = _pins(submitted, leaf.name)
                else:
                    listed = list(values.get(leaf.name) or []) if values is not None else []
                    leaf.selected = [
                        *listed,
                        *(c for c in leaf.choices if c not in listed and _related(c, explicit)),
                    ]
                leaf.choices += [name for name in leaf.selected if name not in leaf.choices]
                leaf.value = _display(leaf.selected)
            leaf.highlighted = _matches(leaf.name, highlighted)
            leaf.warning = warnings.get(leaf.name, "")
            groups[group_of[top_name]].append(leaf)
    form = SpecForm(
        groups=[SpecGroup(title, fields) for title, fields in groups.items() if fields],
        non_field_errors=[],
        prompt=prompt,
    )
    by_name = {f.name: f for f in form.fields}
    for error in errors or []:
        target = _field_for_error(error["field"], list(by_name))
        if target is None:
            label = "" if error["field"] == NON_FIELD else f"{error['field']}: "
            form.non_field_errors.append(f"{label}{error['message']}")
        else:
            by_name[target].error = "; ".join(filter(None, [by_name[target].error, error["message"]]))
    return form


def spec_from_form(data: Mapping[str, Any]) -> dict[str, Any]:
    """The spec dict a submitted job form describes; blank inputs keep their defaults.

    Values stay strings where pydantic converts them, so a typo comes back as a
    field-named validation error rather than a form error of our own.
    """
    spec: dict[str, Any] = {}
    for top_name, leaves in _schema_fields():
        container: dict[str, Any] = {}
        for leaf in leaves:
            key = leaf.name.rsplit(".", 1)[-1] if "." in leaf.name else leaf.name
            if leaf.kind == "pins":
                container[key] = _pins(data, leaf.name)
                continue
            if leaf.kind == "checkbox":
                if leaf.optional_parent:
                    if leaf.name in data:
                        container[key] = True
                    continue
                container[key] = leaf.name in data
                continue
            raw = str(data.get(leaf.name, "")).strip()
            if not raw:
                continue
            if leaf.kind == "list":
                container[key] = [item.strip() for item in raw.split(",") if item.strip()]
            elif leaf.kind == "select":
                container[key] = leaf.choice_values.get(raw, raw)
            else:
                container[key] = raw
        if "." not in leaves[0].name:
            spec.update(container)
            continue
        optional = bool(leaves[0].optional_parent)
        required = [leaf.name.rsplit(".", 1)[-1] for leaf in leaves if leaf.required_in_parent]
        if optional and (not container or any(name not in container for name in required)):
            continue  # an optional block (attack, architecture) left empty or switched off
        if container:
            spec[top_name] = container
    return spec


# --- uploads -----------------------------------------------------------------------------------


class DatasetUploadForm(forms.Form):
    file = forms.FileField(help_text="A CSV file with a header row and a 'label' column.")

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        limit = settings.FLOTILLA_MAX_UPLOAD_MB * 1024 * 1024
        if upload.size > limit:
            raise forms.ValidationError(f"the file is larger than {settings.FLOTILLA_MAX_UPLOAD_MB} MB")
        if not upload.name.lower().endswith(".csv"):
            raise forms.ValidationError("only .csv files can be used as a data set")
        return upload  # its content is checked by the loader's rules when it is stored
