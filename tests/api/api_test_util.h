/* api_test_util.h: helpers shared by the API tests: validating Prometheus
 * text with a real parser (python3-prometheus-client) when installed. */
#ifndef IPPOC_API_TEST_UTIL_H
#define IPPOC_API_TEST_UTIL_H

/* Parses text with prometheus_client.parser.text_string_to_metric_families.
 * Returns 0 when it parses, 1 when the parser rejects it (the reason is on
 * stderr), -1 when no parser is available (the check is then skipped). */
int api_test_prom_parse(const char *text);

#endif
