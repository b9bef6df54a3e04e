# cmake -DIN=file -DOUT=file.c -DNAME=symbol -P Embed.cmake: the bytes of IN
# as a NUL-terminated const char array NAME (the dashboard page is kept as
# a plain .html file and embedded at build time).
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
file(WRITE ${OUT} "/* Generated from ${IN} by cmake/Embed.cmake. */\nconst char ${NAME}[] = {${hex}0};\n")
