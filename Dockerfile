# Callwright in one container: API, media server and controller in one process.
# Not built in CI (the development machines have no Docker engine); see README.
FROM python:3.11-slim
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
COPY . /app
RUN bash scripts/setup.sh
ENV CALLWRIGHT_DATABASE_URL=sqlite+aiosqlite:////data/callwright.sqlite3
VOLUME /data
EXPOSE 8080 8081
CMD [".venv/bin/callwright", "serve", "--config", "config/callwright.toml"]
