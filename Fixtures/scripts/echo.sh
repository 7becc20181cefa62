#!/bin/sh
# echo.sh: the --exec example. Each message arrives as a line on stdin; each line printed is a
# message back. The CGI-style environment says who is asking.
#   wsctl serve --exec 'sh Fixtures/scripts/echo.sh'
echo "hello $REMOTE_ADDR, you asked for ${PATH_INFO}${QUERY_STRING:+?$QUERY_STRING}"
while IFS= read -r line; do
    case "$line" in
        bye) echo "goodbye"; exit 0 ;;
        *) printf '%s\n' "$line" | tr 'a-z' 'A-Z' ;;
    esac
done
