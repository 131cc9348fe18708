"""A stand-in for the AWS Price List API, which moto lacks."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, ClassVar

from sagesaver.demo.wire import Environ, Fault, StartResponse, region_of


class PriceList:
    """A stand-in for the AWS Price List API (moto has none), answering ``GetProducts`` in
    its real format from small offer files in the real bulk format (``demo/offers``: EXAMPLE
    figures, not AWS prices): ``aws`` from ``us-east-1`` in USD, ``aws-cn`` from
    ``cn-northwest-1`` in CNY, as AWS serves them; any other region has no endpoint.

    ``mode``: ``answer`` (the default), ``denied`` (AccessDeniedException, as for a role
    without ``pricing:GetProducts``), ``unreachable`` (an error at once: ServiceUnavailable)
    or ``hang`` (the connection accepted and never answered, as by a proxy or a firewall:
    ``Fault.hang``).
    """

    ENDPOINTS: ClassVar[dict[str, str]] = {"us-east-1": "aws", "cn-northwest-1": "aws-cn"}

    def __init__(self) -> None:
        self.mode = "answer"
        self._offers: dict[str, dict[str, Any]] = {}

    def offer(self, partition: str) -> dict[str, Any]:
        """The offer file the stand-in answers from for ``partition``."""
        if partition not in self._offers:
            from importlib import resources

            text = resources.files("sagesaver.demo").joinpath(f"offers/{partition}.json")
            self._offers[partition] = json.loads(text.read_text(encoding="utf-8"))
        return self._offers[partition]

    def refusal(self, region: str) -> Fault | None:
        """The error to answer with instead of products, if any."""
        if self.mode == "hang":
            return Fault(504, "GatewayTimeout", "no answer", hang=True)
        if self.mode == "denied":
            return Fault(400, "AccessDeniedException", "not authorized: pricing:GetProducts")
        if self.mode == "unreachable" or region not in self.ENDPOINTS:
            # What botocore meets without a route: a connection that never answers in time.
            return Fault(503, "ServiceUnavailable", f"no Price List endpoint in {region!r}")
        return None

    def products(self, region: str, filters: list[dict[str, str]]) -> list[str]:
        """The ``PriceList`` of a GetProducts call (each product a JSON string)."""
        offer = self.offer(self.ENDPOINTS[region])
        wanted = {f["Field"]: f["Value"] for f in filters if f.get("Type") == "TERM_MATCH"}
        found = []
        for sku, product in sorted(offer["products"].items()):
            attributes = product.get("attributes", {})
            if all(attributes.get(k) == v for k, v in wanted.items()):
                item = {
                    "product": product,
                    "serviceCode": offer["offerCode"],
                    "terms": {"OnDemand": offer["terms"]["OnDemand"].get(sku, {})},
                    "version": offer["version"],
                    "publicationDate": offer["publicationDate"],
                }
                found.append(json.dumps(item, sort_keys=True))
        return found

    def answer(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """A GetProducts answer (JSON 1.1) for the request in ``environ``."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length) or b"{}")
        body = json.dumps(
            {
                "FormatVersion": "aws_v1",
                "PriceList": self.products(region_of(environ), request.get("Filters", [])),
            }
        ).encode()
        start_response(
            "200 OK",
            [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))],
        )
        return [body]
