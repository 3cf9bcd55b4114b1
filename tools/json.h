/*
 * json.h: the few pieces of JSON output the programs need.
 */
#ifndef CLTRAIN_TOOLS_JSON_H
#define CLTRAIN_TOOLS_JSON_H

#include <stdio.h>

/* Writes s as a JSON string literal, quotes included, escaping what JSON requires. */
void json_string(FILE *f, const char *s);

#endif
