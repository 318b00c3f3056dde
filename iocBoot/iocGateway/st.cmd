#!../../bin/linux-x86_64/gateway
# Example start-up of the ready gateway IOC:
#     cd iocBoot/iocGateway; ../../bin/<arch>/gateway st.cmd
< envPaths

# The gateway's own CA server takes the CA port; the IOC's RSRV stays out
# (it would otherwise hold the same port). Set before the dbd registers it.
epicsEnvSet("EPICS_IOC_IGNORE_SERVERS", "rsrv")

cd "${TOP}"
dbLoadDatabase "dbd/gatewayIoc.dbd"
gatewayIoc_registerRecordDeviceDriver pdbbase

# The gateway IOC's own records, served through the gateway's server.
dbLoadRecords "db/demo.db", "P=gw:"
# The gateway's statistics and control flags (gw:vctotal, gw:cpuFract,
# gw:report1Flag, ...; documentation/statistics.md). The flags are in ASG
# GatewayAdmin of gateway.access.
dbLoadRecords "db/gateway.db", "P=gw"

# From here on the files are named relative to this directory.
cd "${TOP}/iocBoot/${IOC}"

# Classic gateway options; called before iocInit, the server starts with the IOC.
# The server listens on port 5064; names that are not records of this IOC
# are looked for upstream, here in the IOCs on 127.0.0.1 port 5066 (the
# demo's upstream IOC, scripts/demo). On a real gateway host: -sip with the
# office-side interface, -cip with the machine network's addresses.
# Access control (documentation/access.md):
#   -pvlist gateway.pvlist  which names are served, and in which access
#                           security group (ASG) of the access file
#   -access gateway.access  the IOC's access security file (given before
#                           iocInit, it is asSetFilename): the gateway's
#                           channels and this IOC's own records use it
#   -putlog gateway.putlog  one line per write that a TRAPWRITE rule traps
#                           (here: the gateway's flags); logrotate may move it
#   (the reports of the flags, gwReportFile and SIGUSR2 are appended to
#   gateway.report; gw:commandFlag and SIGUSR1 run gateway.command: the
#   defaults of -report and -command, in this directory)
#   -hostname_from_ip       host access groups (HAG) match the name of the
#                           client's IP address, not the name the client
#                           claims: no client can name itself into the
#                           admin host group
gwStart "-sport 5064 -cip 127.0.0.1 -cport 5066 -pvlist gateway.pvlist -access gateway.access -putlog gateway.putlog -hostname_from_ip"

iocInit

gwVersion
gwReport 1

# At run time, for instance:
#   gwAsTest demo:setpoint gwadmin localhost    what the rules allow, and why
#   gwReport 3                                  the rules in force
#   gwLoadPvList gateway.pvlist                 after editing the pvlist
#   gwLoadAccess                                after editing the access file
#   gwReportFile 1                              report 1 into gateway.report
#   kill -USR1 <pid>                            runs gateway.command
