/*
 * ui.h: GET /ui, the status page, and its script and style sheet (GET /ui/app.js, GET
 * /ui/app.css). The files live in handlers/ui/ and are compiled into the binary
 * (handlers/ui/embed.cmake): nothing is read from disk or fetched from elsewhere. The page
 * reads GET /backends?detail=true, GET /buckets and GET /status and follows changes through
 * the watch parameters of GET /backends. Reads: no authorization of their own. Thread-safe.
 */
#ifndef R53REG_HANDLERS_UI_H
#define R53REG_HANDLERS_UI_H

#include "handlers/api.h"

/* The Content-Security-Policy the server sends with every text/html answer (server/httpd.c):
 * the page loads its script, style sheet and data from this origin only, and runs no inline
 * script or style (img-src data: for its empty icon, so the browser asks for no favicon). */
#define API_UI_CSP                                                                                 \
    "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "              \
    "frame-ancestors 'none'; object-src 'none'"

/* Fill res with 200 and the page (text/html), the script (text/javascript) or the style
 * sheet (text/css), as res->raw. Never fail. */
void api_ui_page(const struct api_request *req, struct api_response *res);
void api_ui_script(const struct api_request *req, struct api_response *res);
void api_ui_style(const struct api_request *req, struct api_response *res);

#endif
