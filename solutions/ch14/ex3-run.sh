### BEGIN SOLUTION
docker run --detach --name cl-ex-ex3 \
  --env-file service/.env \
  --volume "$PWD/service/data:/data:ro" \
  --publish 8000:80 \
  cl-ex-ex3:latest
### END SOLUTION
