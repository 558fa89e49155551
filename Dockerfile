# One image for every playscope component; the command picks the component:
#   docker run playscope collector | streams | indexer | alerts -r /rules | agent -c /agent.yaml
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY playscope ./playscope
COPY collectors ./collectors
COPY streams ./streams
COPY indexers ./indexers
COPY alerts ./alerts
COPY dashboards ./dashboards
COPY bench ./bench
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --create-home --uid 10001 playscope
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY alerts/rules /etc/playscope/rules
USER playscope
WORKDIR /home/playscope
ENV PYTHONUNBUFFERED=1
ENTRYPOINT ["playscope"]
CMD ["--help"]
