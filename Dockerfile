# One image for the API, the workers and the dashboard; docker-compose.yml picks the command.
# No registry? `npm run deploy:base-images` builds both base images from Debian's packages, and
# `npm run deploy:app-image -- --offline` builds this file from the local npm cache (deploy/README.md).
FROM node:20-bookworm-slim AS build
WORKDIR /app
ENV TURBO_TELEMETRY_DISABLED=1
COPY package.json package-lock.json turbo.json tsconfig.base.json ./
# Empty unless deploy/build-app-image.sh --offline put an npm cache there (deploy/npm-cache/README.md).
COPY deploy/npm-cache /tmp/npm-cache
COPY packages ./packages
COPY apps ./apps
COPY bench ./bench
RUN if [ -d /tmp/npm-cache/_cacache ]; then \
      npm ci --offline --cache /tmp/npm-cache --no-audit --no-fund; \
    else \
      npm ci --no-audit --no-fund; \
    fi \
 && npx turbo run build --filter='./apps/*' \
 && npm prune --omit=dev \
 && rm -rf /tmp/npm-cache
# The classic builder keeps this stage as an untagged image; the label lets
# deploy/build-app-image.sh remove exactly its own. Last, so the layers above stay cacheable.
ARG BUILD_ID=none
LABEL research.app-image.build-stage=${BUILD_ID}

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app /app
USER node
CMD ["node", "apps/api/dist/main.js"]
