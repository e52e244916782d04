"""DCAT-AP.de metadata of an export, as JSON-LD with its context inline (no network to expand).

One ``dcat:Dataset`` with title, description, publisher, licence (a dcat-ap.de licence URI),
temporal coverage (the export's local dates), spatial coverage (``privacy.spatial_uri`` or
the site's coordinates as a WKT centroid), theme ``ENER``, and one ``dcat:Distribution`` per
CSV file with media type, format, byte size and SHA-256 checksum (SPDX). Issued and modified
are the export's last day: no wall-clock time, so identical inputs give identical bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from gridcoord.config import Config, OpenDataLicence

CONTEXT: dict[str, Any] = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "dcatde": "http://dcat-ap.de/def/dcatde/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "spdx": "http://spdx.org/rdf/terms#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "locn": "http://www.w3.org/ns/locn#",
    "gsp": "http://www.opengis.net/ont/geosparql#",
}
LICENCES = {
    OpenDataLicence.DL_DE_BY_2_0: "http://dcat-ap.de/def/licenses/dl-by-de/2.0",
    OpenDataLicence.CC_BY_4_0: "http://dcat-ap.de/def/licenses/cc-by/4.0",
}
_CSV_MEDIA = "https://www.iana.org/assignments/media-types/text/csv"
_CSV_FORMAT = "http://publications.europa.eu/resource/authority/file-type/CSV"
_THEME = "http://publications.europa.eu/resource/authority/data-theme/ENER"


@dataclass(frozen=True)
class Distribution:
    """One file of the export."""

    name: str
    title: str
    description: str
    content: bytes


def metadata(
    config: Config, first: date, last: date, files: Sequence[Distribution]
) -> dict[str, Any]:
    """The dataset's DCAT-AP.de description as a JSON-LD document."""
    privacy = config.privacy
    site = config.site
    if privacy.spatial_uri:
        spatial: dict[str, Any] = {"@id": privacy.spatial_uri}
    else:
        spatial = {
            "@type": "dct:Location",
            "dcat:centroid": {
                "@value": f"POINT({site.longitude} {site.latitude})",
                "@type": "gsp:wktLiteral",
            },
        }
    day = {"@value": last.isoformat(), "@type": "xsd:date"}
    context = dict(CONTEXT)
    if privacy.publish_url:
        context["@base"] = privacy.publish_url
    return {
        "@context": context,
        "@type": "dcat:Dataset",
        "dct:title": {
            "@value": f"{site.name}: Erneuerbare Energie und E-Mobilität je Netzzone",
            "@language": "de",
        },
        "dct:description": {
            "@value": (
                "Viertelstündliche Summen je Netzzone: erneuerbare Erzeugung, Verbrauch der "
                "Haushalte, Energie an Ladepunkten, erneuerbarer Anteil, Spitzenlast und aktive "
                f"Ladevorgänge; Zonen mit weniger als {privacy.min_group_size} Haushalten sind "
                "mit der übergeordneten Zone zusammengefasst oder nicht veröffentlicht. "
                "Öffentliche Ladepunkte mit statischen und dynamischen Daten nach AFIR Art. 20."
            ),
            "@language": "de",
        },
        "dct:publisher": {"@type": "foaf:Organization", "foaf:name": privacy.publisher},
        "dct:license": {"@id": LICENCES[privacy.licence]},
        "dct:issued": day,
        "dct:modified": day,
        "dcat:theme": {"@id": _THEME},
        "dct:temporal": {
            "@type": "dct:PeriodOfTime",
            "dcat:startDate": {"@value": first.isoformat(), "@type": "xsd:date"},
            "dcat:endDate": day,
        },
        "dct:spatial": spatial,
        "dcat:temporalResolution": {"@value": "PT15M", "@type": "xsd:duration"},
        "dcat:distribution": [_distribution(config, f) for f in files],
    }


def dumps(document: dict[str, Any]) -> bytes:
    """The document as UTF-8 JSON with sorted keys and a final newline (stable bytes)."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _distribution(config: Config, file: Distribution) -> dict[str, Any]:
    return {
        "@type": "dcat:Distribution",
        "dct:title": {"@value": file.title, "@language": "de"},
        "dct:description": {"@value": file.description, "@language": "en"},
        "dcat:accessURL": {"@id": file.name},
        "dcat:downloadURL": {"@id": file.name},
        "dcat:mediaType": {"@id": _CSV_MEDIA},
        "dct:format": {"@id": _CSV_FORMAT},
        "dct:license": {"@id": LICENCES[config.privacy.licence]},
        "dcat:byteSize": {"@value": str(len(file.content)), "@type": "xsd:nonNegativeInteger"},
        "spdx:checksum": {
            "@type": "spdx:Checksum",
            "spdx:algorithm": {"@id": "spdx:checksumAlgorithm_sha256"},
            "spdx:checksumValue": {
                "@value": hashlib.sha256(file.content).hexdigest(),
                "@type": "xsd:hexBinary",
            },
        },
    }
