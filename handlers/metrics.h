/*
 * metrics.h: GET /metrics, the Prometheus scrape endpoint.
 *
 * Serves metrics_default() (util/metrics.h) in the text exposition format 0.0.4. The caller
 * routes it; it needs no registry and no authorization of its own.
 */
#ifndef R53REG_HANDLERS_METRICS_H
#define R53REG_HANDLERS_METRICS_H

struct api_request;
struct api_response;

/*
 * Render the process-wide metrics registry into res->raw (owned by res, as every raw body)
 * with status 200 and content type "text/plain; version=0.0.4; charset=utf-8". The text is
 * left without its final newline because the server appends one to every body
 * (server/httpd.c send_response). Never fails. Thread-safe; callback gauges run under the
 * metrics registry's mutex while it renders.
 */
void api_metrics(const struct api_request *req, struct api_response *res);

#endif
