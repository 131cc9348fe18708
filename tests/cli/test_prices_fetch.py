"""Issue 28: ``sagesaver prices fetch`` downloads a partition's SageMaker offer files from the
Price List bulk API (the region index, then each region's current file) and writes one compact
price file, where there is internet, for a host that has none. Tested against a local HTTP
server in the bulk API's layout, serving small offer files in the real format (CNY for
``aws-cn``, USD for ``aws``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sagesaver.core.price_file import FORMAT, parse_price_file
from tests.conftest import Cli
from tests.offer_files import rate, regional_offer

pytestmark = pytest.mark.slow  # binds a socket: the bulk API's stand-in

CHINA = {"cn-north-1": "2026-10-15T00:00:00Z", "cn-northwest-1": "2026-10-01T00:00:00Z"}
COMMERCIAL = {"us-east-1": "2026-10-20T00:00:00Z"}


class BulkApi:
    """A local HTTP server laid out as the Price List bulk API: ``files`` by path."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.requests.append(self.path)
                body = api.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, code: str, partition: str, regions: dict[str, str]) -> None:
        """The region index of ``code`` (``aws``, ``cn``) and each region's offer file."""
        index: dict[str, Any] = {"formatVersion": "v1.0", "regions": {}}
        for region, published in regions.items():
            version = published[:10].replace("-", "") + "000000"
            path = f"/offers/v1.0/{code}/AmazonSageMaker/{version}/{region}/index.json"
            index["regions"][region] = {"regionCode": region, "currentVersionUrl": path}
            offer = regional_offer(partition, region, published=published)
            self.files[path] = json.dumps(offer).encode()
        where = f"/offers/v1.0/{code}/AmazonSageMaker/current/region_index.json"
        self.files[where] = json.dumps(index).encode()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def bulk() -> Iterator[BulkApi]:
    api = BulkApi()
    api.publish("cn", "aws-cn", CHINA)
    api.publish("aws", "aws", COMMERCIAL)
    yield api
    api.stop()


def fetch(cli: Cli, bulk: BulkApi, *args: str) -> Any:
    return cli("prices", "fetch", "--base-url", bulk.url, *args)


def test_fetch_writes_one_compact_file_of_the_partitions_regions_in_cny(
    cli: Cli, bulk: BulkApi, tmp_path: Path
) -> None:
    out = tmp_path / "prices-cn.json"
    result = fetch(cli, bulk, "--partition", "aws-cn", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    document = json.loads(out.read_text())
    assert document["format"] == FORMAT
    assert document["partition"] == "aws-cn"
    assert document["publication_date"] == "2026-10-01T00:00:00Z"  # the older of the two
    assert sorted(document["regions"]) == ["cn-north-1", "cn-northwest-1"]
    assert [s["url"] for s in document["sources"]] == [
        f"{bulk.url}/offers/v1.0/cn/AmazonSageMaker/20261015000000/cn-north-1/index.json",
        f"{bulk.url}/offers/v1.0/cn/AmazonSageMaker/20261001000000/cn-northwest-1/index.json",
    ]
    offer = regional_offer("aws-cn", "cn-north-1")
    gpu = document["regions"]["cn-north-1"]["hosting"]["ml.g4dn.xlarge"]
    assert gpu == {
        "amount": pytest.approx(rate(offer, "cn-north-1", "hosting", "ml.g4dn.xlarge")),
        "currency": "CNY",
    }
    # what it wrote is a price file --prices reads
    prices = parse_price_file(out.read_bytes(), str(out))
    assert prices.price("cn-north-1", "notebook", "ml.t3.medium") is not None
    assert prices.published("cn-northwest-1") == CHINA["cn-northwest-1"]
    assert str(out) in result.stdout and "2 regions" in result.stdout
    assert bulk.requests[0] == "/offers/v1.0/cn/AmazonSageMaker/current/region_index.json"
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind


def test_fetch_of_some_regions_of_the_commercial_partition_in_usd(
    cli: Cli, bulk: BulkApi, tmp_path: Path
) -> None:
    out = tmp_path / "prices.json"
    result = fetch(cli, bulk, "--partition", "aws", "--region", "us-east-1", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    document = json.loads(out.read_text())
    assert list(document["regions"]) == ["us-east-1"]
    assert document["regions"]["us-east-1"]["currency"] == "USD"
    assert document["publication_date"] == COMMERCIAL["us-east-1"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--partition", "aws-cn", "--region", "us-east-1"), "us-east-1 is in aws, not aws-cn"),
        (("--partition", "aws-cn", "--region", "cn-nowhere"), "not an AWS region name"),
        (
            (
                "--partition",
                "aws-us-gov",
            ),
            "--partition",
        ),
    ],
)
def test_bad_input_exits_2_before_any_download(
    cli: Cli, bulk: BulkApi, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    out = tmp_path / "prices.json"
    result = fetch(cli, bulk, *args, "--out", str(out))
    assert result.exit_code == 2
    assert message in result.stderr
    assert bulk.requests == []
    assert not out.exists()


def test_a_directory_that_does_not_exist_is_bad_input(
    cli: Cli, bulk: BulkApi, tmp_path: Path
) -> None:
    result = fetch(cli, bulk, "--partition", "aws-cn", "--out", str(tmp_path / "no" / "p.json"))
    assert result.exit_code == 2
    assert "directory" in result.stderr and bulk.requests == []


def test_a_region_the_index_does_not_list_is_bad_input(
    cli: Cli, bulk: BulkApi, tmp_path: Path
) -> None:
    out = tmp_path / "prices.json"
    result = fetch(cli, bulk, "--partition", "aws", "--region", "eu-west-1", "--out", str(out))
    assert result.exit_code == 2
    assert "eu-west-1: not in the aws SageMaker offer (it lists us-east-1)" in result.stderr
    assert not out.exists()


def test_a_failed_download_exits_1_and_leaves_the_old_file_as_it_was(
    cli: Cli, bulk: BulkApi, tmp_path: Path
) -> None:
    out = tmp_path / "prices-cn.json"
    out.write_text("the file of last month\n")
    del bulk.files["/offers/v1.0/cn/AmazonSageMaker/20261001000000/cn-northwest-1/index.json"]
    result = fetch(cli, bulk, "--partition", "aws-cn", "--out", str(out))
    assert result.exit_code == 1
    assert "cn-northwest-1/index.json: HTTP 404" in result.stderr
    assert out.read_text() == "the file of last month\n"
    assert list(tmp_path.iterdir()) == [out]


def test_an_unreachable_host_exits_1(cli: Cli, tmp_path: Path) -> None:
    import socket

    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    out = tmp_path / "prices.json"
    result = cli(
        "prices", "fetch", "--base-url", f"http://127.0.0.1:{port}", "--partition", "aws",
        "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 1
    assert "cannot be reached" in result.stderr
    assert not out.exists()
