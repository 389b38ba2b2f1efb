/* metrics.c: GET /metrics, see metrics.h. Stateless and thread-safe. */
#include "handlers/metrics.h"

#include "handlers/api.h"
#include "util/metrics.h"

void api_metrics(const struct api_request *req, struct api_response *res)
{
    char *text;
    size_t len;

    metrics_render(metrics_default(), &text, &len);
    if (len && text[len - 1] == '\n') /* send_response() adds the last newline back */
        text[--len] = '\0';
    res->status = 200;
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
    res->raw = text;
    res->raw_len = len;
}
