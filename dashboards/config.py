"""The ``dashboards:`` section of playscope.yaml (validated once, unknown keys refused)."""

from __future__ import annotations

from pydantic import Field

from playscope.config import Settings, Strict


class DashboardsConfig(Strict):
    grafana_url: str = "http://localhost:3000"
    grafana_token: str | None = Field(default=None, repr=False)  # a service-account token
    grafana_username: str | None = None  # basic auth, when no token
    grafana_password: str | None = Field(default=None, repr=False)
    grafana_folder: str = "playscope"
    grafana_folder_uid: str = "playscope"
    grafana_datasources: bool = True  # also create/update the data sources over the API
    grafana_elasticsearch_url: str | None = None  # how Grafana reaches Elasticsearch; default: elasticsearch.url
    prometheus_url: str = "http://localhost:9090"  # how Grafana reaches Prometheus
    kibana_url: str = "http://localhost:5601"
    kibana_space: str | None = None
    kibana_username: str | None = None
    kibana_password: str | None = Field(default=None, repr=False)
    kibana_api_key: str | None = Field(default=None, repr=False)
    timeout_s: float = Field(default=10.0, gt=0)
    verify_certs: bool = True


def load(settings: Settings) -> DashboardsConfig:
    return settings.section("dashboards", DashboardsConfig)
