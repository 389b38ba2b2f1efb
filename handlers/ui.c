/*
 * ui.c: GET /ui, /ui/app.js and /ui/app.css (contract: ui.h), served from the byte arrays
 * that handlers/ui/embed.cmake generates at build time (ui_assets.h in the build tree).
 * Stateless and thread-safe.
 */
#include "handlers/ui.h"

#include <string.h>

#include "ui_assets.h"
#include "util/xalloc.h"

/* res takes a copy (the server frees raw bodies). */
static void serve(struct api_response *res, const unsigned char *bytes, size_t len,
                  const char *content_type)
{
    res->raw = xmalloc(len + 1);
    memcpy(res->raw, bytes, len + 1);
    res->raw_len = len;
    res->status = 200;
    res->content_type = content_type;
}

void api_ui_page(const struct api_request *req, struct api_response *res)
{
    serve(res, ui_index_html, ui_index_html_len, "text/html; charset=utf-8");
}

void api_ui_script(const struct api_request *req, struct api_response *res)
{
    serve(res, ui_app_js, ui_app_js_len, "text/javascript; charset=utf-8");
}

void api_ui_style(const struct api_request *req, struct api_response *res)
{
    serve(res, ui_app_css, ui_app_css_len, "text/css; charset=utf-8");
}
