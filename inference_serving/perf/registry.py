"""The performance providers by the name a hardware file's `provider` key (or --perf-model) uses.
A new provider is one file and one line here."""
from ..registry import Registry

PROVIDERS = Registry("performance provider", "--perf-model", {
    "aiconfigurator": ".perf.aiconfigurator:AIConfiguratorProvider",
    "scaled": ".perf.scaled:ScaledProvider",
    "npu": ".perf.npu:NpuProvider",
    "csv": ".perf.csv_provider:CsvProvider",
})
