"""Writes cases.txt: recurrence rules near the 2026 daylight-saving changes
of zones with unusual ones (at midnight, 30 minutes, southern hemisphere),
with DTSTART in gaps, repeated hours and at odd seconds, each with its first
occurrences as python-dateutil (2.9) with zoneinfo expands them, in UTC,
an instant equal to the one before it dropped (as RecurrenceRule does).

    python3 generate.py > cases.txt

One case per line: RULE|DTSTART (local)|ZONE|OCCURRENCE,... ("error": dateutil
refuses the rule).
"""
import random
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo
from dateutil.rrule import rrulestr
random.seed(7)
zones=["Europe/Paris","America/New_York","Africa/Cairo","America/Santiago","Australia/Lord_Howe","Australia/Sydney","Pacific/Chatham","UTC","Asia/Kolkata","America/St_Johns","America/Havana","Asia/Beirut","Europe/London"]
rules=["FREQ=DAILY","FREQ=HOURLY","FREQ=MINUTELY;INTERVAL=15","FREQ=WEEKLY","FREQ=WEEKLY;BYDAY=MO,WE,FR","FREQ=DAILY;BYHOUR=0,2,9","FREQ=MONTHLY;BYDAY=-1SU","FREQ=DAILY;BYHOUR=2;BYMINUTE=30","FREQ=HOURLY;INTERVAL=3","FREQ=YEARLY","FREQ=DAILY;INTERVAL=2","FREQ=MINUTELY;INTERVAL=20","FREQ=DAILY;BYMINUTE=0,30","FREQ=MONTHLY;BYMONTHDAY=1,15"]
# transitions near which to put dtstart
def transitions(z):
    tz=ZoneInfo(z); out=[]
    t=datetime(2026,1,1,tzinfo=timezone.utc)
    prev=t.astimezone(tz).utcoffset()
    while t<datetime(2027,1,1,tzinfo=timezone.utc):
        t2=t+timedelta(minutes=30)
        off=t2.astimezone(tz).utcoffset()
        if off!=prev: out.append(t2.astimezone(tz).replace(tzinfo=None)); prev=off
        t=t2
    return out
cases=[]
for i in range(600):
    z=random.choice(zones); tr=transitions(z)
    if tr and random.random()<0.85:
        base=random.choice(tr)-timedelta(days=random.choice([0,0,0,1,2,7,30]))
        base+=timedelta(minutes=random.choice([-90,-60,-30,-1,0,15,30,45,59,60,90]))
    else:
        base=datetime(2026,random.randint(1,12),random.randint(1,28),random.randint(0,23),random.choice([0,15,30]))
    if random.random()<0.2: base=base.replace(second=random.choice([1,30,45,59]))
    r=random.choice(rules)
    kind=random.random()
    if kind<0.4: r+=";COUNT=%d"%random.randint(1,8)
    elif kind<0.6:
        u=base+timedelta(days=random.randint(0,20),hours=random.randint(0,23))
        r+=";UNTIL="+u.strftime("%Y%m%dT%H%M%SZ")
    cases.append({"rule":r,"dtstart":base.strftime("%Y%m%dT%H%M%S"),"tz":z})
out=[]
for c in cases:
    tz=ZoneInfo(c["tz"])
    d=datetime.strptime(c["dtstart"],"%Y%m%dT%H%M%S").replace(tzinfo=tz)
    try:
        rr=rrulestr("RRULE:"+c["rule"],dtstart=d)
        res=[]; last=None
        for o in rr:
            u=o.astimezone(timezone.utc)
            if last is None or u>last:
                res.append(u.strftime("%Y%m%dT%H%M%SZ")); last=u
            if len(res)>=8: break
        c["want"]=res
    except Exception as e:
        c["want"]="ERR "+str(e)
    out.append(c)
for c in out:
    want = c["want"] if isinstance(c["want"], list) else ["error"]
    print("|".join([c["rule"], c["dtstart"], c["tz"], ",".join(want)]))
