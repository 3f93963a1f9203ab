### BEGIN SOLUTION
ARG BASE_IMAGE=python:3.13-slim
FROM ${BASE_IMAGE}

WORKDIR /app

COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY src/ src/

EXPOSE 80
CMD ["uvicorn", "src.customer_value.api:app", "--host", "0.0.0.0", "--port", "80"]
### END SOLUTION
