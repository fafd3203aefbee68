# Pier as a container image: `docker build -t pier .`
# Runs as the unprivileged `node` user, listens on 0.0.0.0:3000, keeps its state under /data
# (SQLite metadata and tarballs unless storage.meta / storage.type say otherwise), and reports
# healthy once GET /-/ping answers. Configure with PIER_* environment variables (rc convention:
# PIER_STORAGE__META__URL=...) or a config file mounted at /etc/pier/config.yaml.

FROM node:20-bookworm-slim AS build
# better-sqlite3 compiles from source when no prebuilt binary fits.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY test ./test
COPY bench ./bench
RUN npx tsc -p tsconfig.json && npm prune --omit=dev && rm -rf dist/test dist/bench

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    PIER_SERVER__HOST=0.0.0.0 \
    PIER_SERVER__PORT=3000 \
    PIER_STORAGE__LOCAL__PATH=/data
WORKDIR /app
COPY --from=build --chown=root:root /app/package.json ./
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --from=build --chown=root:root /app/bin ./bin
RUN mkdir -p /data /etc/pier && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PIER_SERVER__PORT||3000)+'/-/ping').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["start"]
