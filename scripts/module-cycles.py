#!/usr/bin/env python3
"""Fails when modules of one crate import each other in a cycle (issue #16: "no import cycles
between modules"). Reads `crate::…` and `super::…` paths in non-test code, at the level of
top-level modules and their direct submodules; prints each cycle with its edges."""
import os, re, sys

def strip_tests(s):
    m=re.search(r'\n#\[cfg\(test\)\]\n(pub )?mod \w+ \{', s)
    s = s[:m.start()] if m else s
    return '\n'.join(l for l in s.split('\n') if not l.strip().startswith('//'))
os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
found = False
for crate in ['domain','protocol','alerting','notify','store','dashboard','gateway','simulators']:
    src=os.path.join(crate,'src')
    mods={}
    for root,_,fs in os.walk(src):
        for f in fs:
            if not f.endswith('.rs'): continue
            p=os.path.join(root,f)
            rel=os.path.relpath(p,src)[:-3]
            parts=rel.split('/')
            if parts[-1] in ('mod','lib','main'): parts=parts[:-1]
            if parts and parts[-1]=='tests': continue
            if not parts: continue
            name='::'.join(parts)
            mods[name]=strip_tests(open(p).read())
    names=set(mods)
    edges={}
    for name,s in mods.items():
        deps=set()
        parent=name.rsplit('::',1)[0] if '::' in name else ''
        # expand use crate::{a, b::c}
        for m in re.finditer(r'crate::\{([^}]*)\}', s):
            for item in m.group(1).split(','):
                item=item.strip().split('::')[0].split(' ')[0]
                if item: deps.add(item)
        for m in re.finditer(r'crate::(\w+)(?:::(\w+))?', s):
            a,b=m.group(1),m.group(2)
            if b and f'{a}::{b}' in names: deps.add(f'{a}::{b}')
            else: deps.add(a)
        for m in re.finditer(r'\bsuper::(\w+)', s):
            t=(parent+'::' if parent else '')+m.group(1)
            deps.add(t)
        deps={d for d in deps if d in names and d!=name and not name.startswith(d+'::') and not d.startswith(name+'::')}
        edges[name]=deps
    # tarjan
    idx={};low={};st=[];on=set();res=[];c=[0]
    def sc(v):
        idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
        for w in edges[v]:
            if w not in idx: sc(w);low[v]=min(low[v],low[w])
            elif w in on: low[v]=min(low[v],idx[w])
        if low[v]==idx[v]:
            comp=[]
            while True:
                w=st.pop();on.discard(w);comp.append(w)
                if w==v:break
            if len(comp)>1: res.append(comp)
    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in idx: sc(v)
    for comp in res:
        found = True
        print(crate, 'CYCLE:', sorted(comp))
        for v in comp: print('   ',v,'->',sorted(edges[v]&set(comp)))
if found:
    sys.exit(1)
print('no import cycles between modules')
