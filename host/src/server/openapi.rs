//! `GET /openapi.json`: the routes, described for tools and clients.

use serde_json::{Value, json};

/// The OpenAPI 3.1 description of the server.
pub fn document() -> Value {
    let error = json!({"description": "error envelope", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let instance = json!([
        {"name": "name", "in": "path", "required": true, "schema": {"type": "string"}},
        {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}
    ]);
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Flue for WebAssembly", "version": env!("CARGO_PKG_VERSION")},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
                    "required": ["type", "message"],
                    "properties": {"type": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "string"},
                                   "dev": {"type": "string"}, "meta": {"type": "object"}}}}},
                "Prompt": {"type": "object", "properties": {
                    "message": {"type": "string"}, "prompt": {"type": "string", "description": "alias of message"},
                    "session": {"type": "string", "default": "default"},
                    "payload": {"type": "object", "description": "the same fields, wrapped"}}},
                "Result": {"type": "object", "properties": {
                    "text": {"type": "string"}, "metadata": {"type": "object"},
                    "usage": {"type": "object"}, "model": {"type": "object", "properties": {"id": {"type": "string"}}}}}
            }
        },
        "security": [{}, {"bearer": []}],
        "paths": {
            "/health": {"get": {"summary": "Liveness", "responses": {"200": {"description": "ok"}}}},
            "/agents": {"get": {"summary": "The loaded agents", "responses": {"200": {"description": "agents"}, "401": error}}},
            "/agents/{name}/{id}": {
                "parameters": instance,
                "post": {
                    "summary": "Prompt an instance; JSON, or SSE with Accept: text/event-stream",
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Prompt"}}}},
                    "responses": {
                        "200": {"description": "the result", "content": {
                            "application/json": {"schema": {"type": "object", "properties": {"result": {"$ref": "#/components/schemas/Result"}}}},
                            "text/event-stream": {"schema": {"type": "string"}}}},
                        "400": error, "401": error, "403": error, "404": error, "413": error, "415": error, "422": error, "429": error, "500": error, "502": error
                    }
                },
                "get": {"summary": "WebSocket upgrade: many prompts on one connection", "responses": {"101": {"description": "switching protocols"}, "405": error}}
            },
            "/agents/{name}/{id}/dispatch": {
                "parameters": instance,
                "post": {
                    "summary": "Store an event for a session; answered once it is durably committed",
                    "parameters": [{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["input"], "properties": {
                        "input": {"description": "any JSON value"}, "session": {"type": "string", "default": "default"},
                        "idempotency_key": {"type": "string"}}}}}},
                    "responses": {"202": {"description": "accepted: status, dispatch_id, accepted_at"},
                                  "400": error, "401": error, "403": error, "404": error, "413": error, "415": error, "500": error}
                }
            },
            "/dispatches/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "get": {"summary": "A dispatched event: status (queued, running, done, dead), attempts, last error",
                        "responses": {"200": {"description": "the dispatch record"}, "401": error, "404": error}}
            },
            "/workflows/{name}": {
                "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}},
                               {"name": "wait", "in": "query", "schema": {"type": "string", "enum": ["result"]}}],
                "post": {
                    "summary": "Start a run; 202 with the run id, 200 with the result (?wait=result), or the run's events as SSE",
                    "requestBody": {"content": {"application/json": {"schema": {"description": "the payload, or {\"payload\": …}"}}}},
                    "responses": {"202": {"description": "accepted: run_id (also in X-Flue-Run-Id)"},
                                  "200": {"description": "completed: run_id, result"},
                                  "404": error, "500": error}
                },
                "get": {"summary": "WebSocket: send {\"payload\"}, receive the run's events then a result", "responses": {"101": {"description": "switching protocols"}}}
            },
            "/runs/{id}": {"get": {"summary": "A run record", "responses": {"200": {"description": "the run"}, "404": error}}},
            "/runs/{id}/events": {"get": {"summary": "A page of a run's events (?after=N&limit=M)", "responses": {"200": {"description": "events, next_after"}, "404": error}}},
            "/runs/{id}/stream": {"get": {"summary": "A run's events as SSE; resumes after Last-Event-ID", "responses": {"200": {"description": "text/event-stream"}, "404": error}}},
            "/runs/{id}/cancel": {"post": {"summary": "Stop a run in progress", "responses": {"200": {"description": "cancelled"}, "404": error, "409": error}}},
            "/admin/tenants/{tenant}/agents/{name}": {
                "parameters": [{"name": "tenant", "in": "path", "required": true, "schema": {"type": "string"}},
                               {"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
                "put": {"summary": "Install or replace a tenant's agent from component bytes, checked first (admin keys)",
                        "requestBody": {"required": true, "content": {"application/wasm": {"schema": {"type": "string", "format": "binary"}}}},
                        "responses": {"200": {"description": "replaced"}, "201": {"description": "installed"},
                                      "400": error, "401": error, "403": error, "404": error, "413": error}},
                "delete": {"summary": "Remove a tenant's agent (admin keys)",
                           "responses": {"204": {"description": "removed"}, "401": error, "403": error, "404": error}}
            },
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text exposition"}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}}
        }
    })
}
