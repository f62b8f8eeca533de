"""The prompt templates a new installation starts with (staff may edit or delete them)."""

from django.db import migrations

FINDINGS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "timestamp": {"type": "string", "pattern": "^[0-9]{2}:[0-9]{2}:[0-9]{2}$"},
            "finding": {"type": "string"},
            "severity": {"enum": ["low", "medium", "high"]},
        },
        "required": ["timestamp", "finding", "severity"],
        "additionalProperties": False,
    },
}

DEFAULTS = [
    {
        "name": "Flag unusual events with time codes",
        "text": "Go through {item} and flag every unusual event: what happens, when (hh:mm:ss) "
        "and how serious it is. Leave out what is routine.",
        "media_kinds": ["video", "audio"],
        "sampler": {"temperature": 0.0, "max_tokens": 768},
        "response_schema": FINDINGS,
    },
    {
        "name": "Transcribe with time codes",
        "text": "Transcribe the speech in {item}. Start each line with its time code as "
        "[hh:mm:ss] and, when you can tell, who speaks. Mark unclear words as [inaudible].",
        "media_kinds": ["audio", "video"],
        "sampler": {"temperature": 0.0, "max_tokens": 1024},
        "response_schema": None,
    },
    {
        "name": "Describe findings in this scan",
        "text": "Describe the findings in {item}: where each is, its size and appearance, then "
        "a one-line impression. Say plainly what you are not sure about.",
        "media_kinds": ["image", "document"],
        "sampler": {"temperature": 0.0, "max_tokens": 512},
        "response_schema": None,
    },
    {
        "name": "Summarize this document with page references",
        "text": "Summarize {item} in short bullet points, most important first. End each "
        "point with the page it comes from, as [page N].",
        "media_kinds": ["document"],
        "sampler": {"temperature": 0.0, "max_tokens": 512},
        "response_schema": None,
    },
    {
        "name": "List defects visible on the line",
        "text": "List each defect visible in {item}: what it is, where on the part or the "
        "line it is, and for video the time code as [hh:mm:ss]. Say so if you see none.",
        "media_kinds": ["image", "video"],
        "sampler": {"temperature": 0.0, "max_tokens": 512},
        "response_schema": None,
    },
]


def add_defaults(apps, schema_editor):
    PromptTemplate = apps.get_model("analysis", "PromptTemplate")
    for values in DEFAULTS:
        PromptTemplate.objects.get_or_create(case=None, name=values["name"], defaults=values)


def remove_defaults(apps, schema_editor):
    PromptTemplate = apps.get_model("analysis", "PromptTemplate")
    PromptTemplate.objects.filter(case=None, name__in=[d["name"] for d in DEFAULTS]).delete()


class Migration(migrations.Migration):
    dependencies = [("analysis", "0010_workflow")]
    operations = [migrations.RunPython(add_defaults, remove_defaults)]
