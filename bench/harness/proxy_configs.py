"""The peer reverse proxies' configurations for scenario 9 (and bench/experiments/proxy_cpu.py),
kept apart so that they can be read without the harness. Standard library only."""

# Reverse-proxy configurations written at run time into a temporary folder ({prefix}), recorded
# in the results with that folder shown as $PREFIX. Both keep connections to the upstream open
# and reused, as slowlab proxy's pooled client does, and neither logs requests (slowlab proxy
# logs none without --log-format). keepalive_requests: nginx closes a keep-alive connection
# after 1,000 requests by default, on both sides; slowlab proxy and haproxy set no such cap.
# haproxy's maxconn sizes its descriptor limit (about twice maxconn), which it must be able to
# raise to: 4,096 is far above the 50 connections measured and within a 20,000 hard limit.
NGINX_CONF = """daemon off;
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 1000000;
    upstream upstream {{
        server 127.0.0.1:{upstream};
        keepalive 64;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""

HAPROXY_CONF = """global
    nbthread {workers}
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    http-reuse always
frontend proxy
    bind 127.0.0.1:{port}
    default_backend upstream
backend upstream
    server upstream 127.0.0.1:{upstream}
"""
